/* Common prelude for the cmocka unit tests: cmocka.h needs these standard headers first, in this
 * order, and every test wants the cleanup helpers. */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "macro.h"
