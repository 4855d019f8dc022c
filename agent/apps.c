/* (being written for issue 5) */
#include "apps.h"
