/* (being written for issue 5) */
#include "push.h"
