/* (being written for issue 6) */
#include "backup.h"
