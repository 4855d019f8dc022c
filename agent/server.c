/* (being written for issue 5) */
#include "server.h"
