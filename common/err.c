#include "common/err.h"

#include <string.h>

const char *dream_strerror(int err)
{
        switch (err) {
        case 0:
                return "success";
#define DREAM_ERR_MSG(name, value, msg)                                                            \
        case name:                                                                                 \
                return msg;
                DREAM_ERRORS(DREAM_ERR_MSG)
#undef DREAM_ERR_MSG
        default:
                break;
        }
        if (err < 0 && err > -4096)
                return strerror(-err);
        return "unknown error";
}

const char *dream_errname(int err)
{
        switch (err) {
        case 0:
                return "OK";
#define DREAM_ERR_NAME(name, value, msg)                                                           \
        case name:                                                                                 \
                return #name;
                DREAM_ERRORS(DREAM_ERR_NAME)
#undef DREAM_ERR_NAME
        default:
                break;
        }
        if (err < 0 && err > -4096) {
                const char *n = strerrorname_np(-err);
                if (n)
                        return n;
        }
        return "EUNKNOWN";
}
