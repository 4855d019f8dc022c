/* Failpoints: INFRASTREAM_FAILPOINT=<step> makes the agent abort at that step, as a crash
 * would, so tests can prove that every step resumes. */
#pragma once

void failpoint(const char *step);
