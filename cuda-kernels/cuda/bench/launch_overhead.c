/*
 * launch_overhead.c -- the C baseline of the launch-overhead benchmark (PERFORMANCE.md: "per-launch host overhead,
 * FFM and JCuda <= 1.2 x a native cuLaunchKernel"; ai.lorakit.bench.gpu.LaunchOverhead measures the Java side the
 * same way).
 *
 *   launch_overhead FATBIN [BURST=256] [BURSTS=40]
 *
 * Loads FATBIN (lorakit.fatbin, extracted from the java-bindings jar) with cuModuleLoadData in device 0's primary
 * context, then times bursts of BURST launches of noop_fwd_kernel1(p, 0, 1.0f) (block 32, grid 1) on a stream of
 * its own: host nanoseconds per cuLaunchKernel call (submission only), and per launch including the final
 * cuStreamSynchronize. Prints one JSON object: medians and minima over the bursts, after 2 warm-up bursts.
 *
 * libcuda.so.1 is opened with dlopen, so this builds with any C compiler and no CUDA headers or stubs
 * (ci/gpu-bundle.sh: cc -O2 -o launch_overhead launch_overhead.c -ldl) and fails cleanly without a driver.
 * Every CUDA call's status is checked; a failure prints {"error": "..."} and exits 1.
 */
#define _POSIX_C_SOURCE 199309L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int CUresult;
typedef int CUdevice;
typedef void* CUcontext;
typedef void* CUmodule;
typedef void* CUfunction;
typedef void* CUstream;
typedef unsigned long long CUdeviceptr;

static CUresult (*p_cuInit)(unsigned int);
static CUresult (*p_cuDeviceGet)(CUdevice*, int);
static CUresult (*p_cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice);
static CUresult (*p_cuCtxSetCurrent)(CUcontext);
static CUresult (*p_cuModuleLoadData)(CUmodule*, const void*);
static CUresult (*p_cuModuleGetFunction)(CUfunction*, CUmodule, const char*);
static CUresult (*p_cuStreamCreate)(CUstream*, unsigned int);
static CUresult (*p_cuStreamSynchronize)(CUstream);
static CUresult (*p_cuMemAlloc)(CUdeviceptr*, size_t);
static CUresult (*p_cuLaunchKernel)(CUfunction, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int,
                                    unsigned int, unsigned int, CUstream, void**, void**);
static CUresult (*p_cuGetErrorName)(CUresult, const char**);

static void fail(const char* call, CUresult rc) {
    const char* name = "?";
    if (p_cuGetErrorName != NULL) {
        p_cuGetErrorName(rc, &name);
    }
    printf("{\"binding\": \"c\", \"error\": \"%s failed: %s (%d)\"}\n", call, name, rc);
    exit(1);
}

#define CHECK(call, expr)          \
    do {                           \
        CUresult rc_ = (expr);     \
        if (rc_ != 0) {            \
            fail(call, rc_);       \
        }                          \
    } while (0)

static void* sym(void* lib, const char* name) {
    void* p = dlsym(lib, name);
    if (p == NULL) {
        printf("{\"binding\": \"c\", \"error\": \"libcuda.so.1 has no %s\"}\n", name);
        exit(1);
    }
    return p;
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a;
    double y = *(const double*)b;
    return (x > y) - (x < y);
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FATBIN [BURST=256] [BURSTS=40]\n", argv[0]);
        return 2;
    }
    int burst = argc > 2 ? atoi(argv[2]) : 256;
    int bursts = argc > 3 ? atoi(argv[3]) : 40;
    if (burst < 1 || bursts < 1) {
        fprintf(stderr, "BURST and BURSTS must be >= 1\n");
        return 2;
    }

    FILE* f = fopen(argv[1], "rb");
    if (f == NULL) {
        printf("{\"binding\": \"c\", \"error\": \"cannot open %s\"}\n", argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void* image = malloc((size_t)size);
    if (image == NULL || fread(image, 1, (size_t)size, f) != (size_t)size) {
        printf("{\"binding\": \"c\", \"error\": \"cannot read %s\"}\n", argv[1]);
        return 1;
    }
    fclose(f);

    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        printf("{\"binding\": \"c\", \"error\": \"no CUDA device: libcuda.so.1 not found\"}\n");
        return 1;
    }
    *(void**)&p_cuInit = sym(lib, "cuInit");
    *(void**)&p_cuDeviceGet = sym(lib, "cuDeviceGet");
    *(void**)&p_cuDevicePrimaryCtxRetain = sym(lib, "cuDevicePrimaryCtxRetain");
    *(void**)&p_cuCtxSetCurrent = sym(lib, "cuCtxSetCurrent");
    *(void**)&p_cuModuleLoadData = sym(lib, "cuModuleLoadData");
    *(void**)&p_cuModuleGetFunction = sym(lib, "cuModuleGetFunction");
    *(void**)&p_cuStreamCreate = sym(lib, "cuStreamCreate");
    *(void**)&p_cuStreamSynchronize = sym(lib, "cuStreamSynchronize");
    *(void**)&p_cuMemAlloc = sym(lib, "cuMemAlloc_v2");
    *(void**)&p_cuLaunchKernel = sym(lib, "cuLaunchKernel");
    *(void**)&p_cuGetErrorName = sym(lib, "cuGetErrorName");

    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    CUstream stream;
    CUdeviceptr buf;
    CHECK("cuInit", p_cuInit(0));
    CHECK("cuDeviceGet", p_cuDeviceGet(&dev, 0));
    CHECK("cuDevicePrimaryCtxRetain", p_cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK("cuCtxSetCurrent", p_cuCtxSetCurrent(ctx));
    CHECK("cuModuleLoadData", p_cuModuleLoadData(&mod, image));
    CHECK("cuModuleGetFunction(noop_fwd_kernel1)", p_cuModuleGetFunction(&fn, mod, "noop_fwd_kernel1"));
    CHECK("cuStreamCreate", p_cuStreamCreate(&stream, 1 /* CU_STREAM_NON_BLOCKING */));
    CHECK("cuMemAlloc", p_cuMemAlloc(&buf, 128));

    int n = 0;
    float a = 1.0f;
    void* args[3] = {&buf, &n, &a};
    double* submit = malloc(sizeof(double) * (size_t)bursts);
    double* total = malloc(sizeof(double) * (size_t)bursts);
    for (int b = -2; b < bursts; ++b) {
        double t0 = now_ns();
        for (int i = 0; i < burst; ++i) {
            CHECK("cuLaunchKernel(noop_fwd_kernel1)", p_cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, stream, args, NULL));
        }
        double t1 = now_ns();
        CHECK("cuStreamSynchronize", p_cuStreamSynchronize(stream));
        double t2 = now_ns();
        if (b >= 0) {
            submit[b] = (t1 - t0) / burst / 1000.0;
            total[b] = (t2 - t0) / burst / 1000.0;
        }
    }
    qsort(submit, (size_t)bursts, sizeof(double), cmp_double);
    qsort(total, (size_t)bursts, sizeof(double), cmp_double);
    printf("{\"binding\": \"c\", \"burst\": %d, \"bursts\": %d, \"launch_us_median\": %.4f, \"launch_us_min\": %.4f, "
           "\"with_sync_us_median\": %.4f}\n",
           burst, bursts, submit[bursts / 2], submit[0], total[bursts / 2]);
    free(submit);
    free(total);
    free(image);
    return 0;
}
