/* (being written for issue 5) */
#pragma once
