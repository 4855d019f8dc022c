/* (being written for issue 5) */
#include "serve.h"
