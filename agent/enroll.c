/* (being written for issue 5) */
#include "enroll.h"
