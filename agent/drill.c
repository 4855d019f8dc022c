/* (being written for issue 6) */
#include "drill.h"
