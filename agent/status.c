/* (being written for issue 5) */
#include "status.h"
