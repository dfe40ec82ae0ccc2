/* report.c -- placeholder: `tributary report` (issue 4). */
#include <stdio.h>

#include "cli.h"

int trib_cli_report(int argc, char **argv)
{
    fprintf(stderr, "tributary report: not built yet\n");
    return TRIB_EXIT_ERROR;
}
