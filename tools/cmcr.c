#include "cmcr.h"
#include <stdio.h>
int main(void) { printf("cmcr %s\n", CMCR_VERSION_STRING); return 0; }
