/* (being written for issue 5) */
#include "https-server.h"
