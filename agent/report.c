/* (being written for issue 5) */
#include "report.h"
