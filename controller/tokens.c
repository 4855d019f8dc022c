/* (being written for issue 5) */
#include "tokens.h"
