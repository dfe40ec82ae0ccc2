/*
 * main.c -- tributary-coordinator.
 *
 * The coordinator (cluster-wide event view) is not built yet; this binary
 * exists so deployments and scripts can refer to it. It says so and exits
 * with status 3 rather than pretending to run.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("tributary-coordinator %s\n", TRIB_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("Usage: tributary-coordinator [--help] [--version]\n\n"
                   "Not implemented yet: the coordinator arrives with the "
                   "coordinator issue.\nUntil then, tributary-agent "
                   "--events-out prints each client's events.\n");
            return 0;
        }
    }
    fprintf(stderr, "tributary-coordinator: not implemented yet (see "
                    "--help)\n");
    return 3;
}
