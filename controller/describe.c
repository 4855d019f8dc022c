/* (being written for issue 5) */
#include "describe.h"
