/* (being written for issue 5) */
#include "wire.h"
