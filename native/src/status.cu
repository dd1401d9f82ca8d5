// ABI version, per-thread error messages, checks, and the device-count probe.
#include <cstdarg>
#include <cstdio>

#include "internal.h"

namespace lorakit {

namespace {
thread_local char last_error[512] = "";
}  // namespace

int fail(int status, const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
    return status;
}

int check_not_null(const char* fn, const char* arg, const void* p) {
    return p != nullptr ? LORAKIT_OK : fail(LORAKIT_ERR_INVALID, "%s: %s is NULL", fn, arg);
}

int check_positive(const char* fn, const char* arg, int v) {
    return v > 0 ? LORAKIT_OK : fail(LORAKIT_ERR_INVALID, "%s: %s = %d, must be > 0", fn, arg, v);
}

int check_cuda(const char* fn, const char* what, cudaError_t e) {
    if (e == cudaSuccess) {
        return LORAKIT_OK;
    }
    return fail(LORAKIT_ERR_CUDA, "%s: %s failed: %s (%d): %s", fn, what, cudaGetErrorName(e),
                static_cast<int>(e), cudaGetErrorString(e));
}

}  // namespace lorakit

extern "C" int lorakit_abi_version(void) {
    return LORAKIT_ABI_VERSION;
}

extern "C" const char* lorakit_last_error(void) {
    return lorakit::last_error;
}

extern "C" int lorakit_cuda_device_count(int* count) {
    LORAKIT_TRY(lorakit::check_not_null("lorakit_cuda_device_count", "count", count));
    *count = 0;  // cudaGetDeviceCount leaves it untouched when there is no driver (TOOLCHAIN.md)
    const cudaError_t e = cudaGetDeviceCount(count);
    if (e != cudaSuccess) {
        *count = 0;
        (void)cudaGetLastError();  // the probe's failure is reported here, not by the next launcher
        lorakit::check_cuda("lorakit_cuda_device_count", "cudaGetDeviceCount", e);
        return static_cast<int>(e);
    }
    return static_cast<int>(cudaSuccess);
}
