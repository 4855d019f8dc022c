/* (being written for issue 6) */
#pragma once
