/* stress.c -- placeholder: `tributary stress` (issue 4). */
#include <stdio.h>

#include "cli.h"

int trib_cli_stress(int argc, char **argv)
{
    fprintf(stderr, "tributary stress: not built yet\n");
    return TRIB_EXIT_ERROR;
}
