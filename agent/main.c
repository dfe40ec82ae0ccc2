/*
 * main.c -- tributary-agent: the agent with its built-in job kinds.
 * Everything lives in the trib_agent library (see agent.c).
 */
#include "trib_kind.h"

int main(int argc, char **argv)
{
    return trib_agent_main(argc, argv, NULL);
}
