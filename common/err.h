/* Project error codes. The table is public (libdream installs it as
 * <dream/err.h>); this header is how the project's own code includes it. */
#ifndef DREAM_COMMON_ERR_H
#define DREAM_COMMON_ERR_H

#include "include/dream/err.h"

#endif
