/* (being written for issue 6) */
#include "schedule.h"
