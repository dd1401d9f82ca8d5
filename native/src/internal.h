// Shared by native/src/*.cu: the per-thread error message and the argument / CUDA checks every entry point uses.
#ifndef LORAKIT_INTERNAL_H
#define LORAKIT_INTERNAL_H

#include <cuda_runtime.h>

#include "lorakit.h"

namespace lorakit {

// Formats the calling thread's last-error message (printf style) and returns `status`.
int fail(int status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// LORAKIT_ERR_INVALID naming `fn` and `arg` when p is NULL, else LORAKIT_OK.
int check_not_null(const char* fn, const char* arg, const void* p);

// LORAKIT_ERR_INVALID naming `fn`, `arg` and its value when v <= 0, else LORAKIT_OK.
int check_positive(const char* fn, const char* arg, int v);

// LORAKIT_ERR_CUDA naming `fn`, the CUDA call `what` and the error's name, number and text when
// e != cudaSuccess, else LORAKIT_OK.
int check_cuda(const char* fn, const char* what, cudaError_t e);

}  // namespace lorakit

// Returns from the enclosing function when the check fails.
#define LORAKIT_TRY(call)                    \
    do {                                     \
        const int lorakit_rc_ = (call);      \
        if (lorakit_rc_ != LORAKIT_OK) {     \
            return lorakit_rc_;              \
        }                                    \
    } while (0)

#endif  // LORAKIT_INTERNAL_H
