/*
 * main.c -- tributary-coordinator (see coord.h).
 */
#include "coord.h"

int main(int argc, char **argv)
{
    return trib_coordinator_main(argc, argv);
}
