/* (being written for issue 6) */
#include "pgbackrest.h"
