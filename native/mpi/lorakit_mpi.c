/* liblorakit_mpi.so: see include/lorakit_mpi.h. */
#define _GNU_SOURCE
#include "lorakit_mpi.h"

#include <dlfcn.h>
#include <limits.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static char last_error[1024] = "";
static char library_version[MPI_MAX_LIBRARY_VERSION_STRING + 1] = "";

static int fail(const char* call, int rc) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) {
        snprintf(text, sizeof text, "MPI error %d", rc);
    }
    snprintf(last_error, sizeof last_error, "%s failed: %s (MPI error %d)", call, text, rc);
    return LORAKIT_MPI_ERR;
}

static int invalid(const char* what) {
    snprintf(last_error, sizeof last_error, "%s", what);
    return LORAKIT_MPI_ERR;
}

int lorakit_mpi_abi_version(void) { return LORAKIT_MPI_ABI_VERSION; }

const char* lorakit_mpi_last_error(void) { return last_error; }

const char* lorakit_mpi_library_version(void) {
    if (library_version[0] == '\0') {
        int len = 0;
        MPI_Get_library_version(library_version, &len);   /* callable before MPI_Init (MPI-3) */
        library_version[strcspn(library_version, "\n")] = '\0';
    }
    return library_version;
}

/* Open MPI loads its components with dlopen and expects libmpi's symbols to be global; FFM loads this shim (and
   libmpi with it) RTLD_LOCAL. Re-open the already loaded libmpi with RTLD_GLOBAL, as mpi4py does. */
static void promote_libmpi(void) {
    Dl_info info;
    if (dladdr((void*)&MPI_Init, &info) != 0 && info.dli_fname != NULL) {
        dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    }
}

int lorakit_mpi_init(int* rank, int* size) {
    if (rank == NULL || size == NULL) {
        return invalid("lorakit_mpi_init: rank and size must not be NULL");
    }
    int done = 0;
    MPI_Finalized(&done);
    if (done) {
        return invalid("lorakit_mpi_init: MPI was finalized already (it cannot start twice in one process)");
    }
    int started = 0;
    MPI_Initialized(&started);
    if (!started) {
        promote_libmpi();
        /* The JVM handles these signals itself (implicit null checks, safepoints); keep its handlers. */
        static const int kept[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
        struct sigaction saved[4];
        for (int i = 0; i < 4; i++) {
            sigaction(kept[i], NULL, &saved[i]);
        }
        int provided = 0;
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
        for (int i = 0; i < 4; i++) {
            sigaction(kept[i], &saved[i], NULL);
        }
        if (rc != MPI_SUCCESS) {
            return fail("MPI_Init_thread", rc);
        }
        if (provided < MPI_THREAD_SERIALIZED) {
            return invalid("MPI_Init_thread: this MPI provides thread level < MPI_THREAD_SERIALIZED; lorakit calls"
                           " MPI from one thread at a time but not always the same one");
        }
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    }
    int rc = MPI_Comm_rank(MPI_COMM_WORLD, rank);
    if (rc != MPI_SUCCESS) {
        return fail("MPI_Comm_rank", rc);
    }
    rc = MPI_Comm_size(MPI_COMM_WORLD, size);
    return rc == MPI_SUCCESS ? LORAKIT_MPI_OK : fail("MPI_Comm_size", rc);
}

int lorakit_mpi_finalize(void) {
    int started = 0;
    int done = 0;
    MPI_Initialized(&started);
    MPI_Finalized(&done);
    if (!started || done) {
        return LORAKIT_MPI_OK;
    }
    int rc = MPI_Finalize();
    return rc == MPI_SUCCESS ? LORAKIT_MPI_OK : fail("MPI_Finalize", rc);
}

static int allreduce(void* buf, long long n, MPI_Datatype type, size_t elem, const char* name) {
    if (n < 0 || (buf == NULL && n > 0)) {
        snprintf(last_error, sizeof last_error, "%s: bad buffer (%p, n %lld)", name, buf, n);
        return LORAKIT_MPI_ERR;
    }
    char* p = (char*)buf;
    while (n > 0) {
        int count = n > INT_MAX ? INT_MAX : (int)n;
        int rc = MPI_Allreduce(MPI_IN_PLACE, p, count, type, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) {
            return fail(name, rc);
        }
        p += (size_t)count * elem;
        n -= count;
    }
    return LORAKIT_MPI_OK;
}

int lorakit_mpi_allreduce_sum_f32(float* buf, long long n) {
    return allreduce(buf, n, MPI_FLOAT, sizeof(float), "MPI_Allreduce(float, sum)");
}

int lorakit_mpi_allreduce_sum_f64(double* buf, long long n) {
    return allreduce(buf, n, MPI_DOUBLE, sizeof(double), "MPI_Allreduce(double, sum)");
}

int lorakit_mpi_bcast(void* buf, long long n, int root) {
    if (n < 0 || (buf == NULL && n > 0)) {
        return invalid("lorakit_mpi_bcast: bad buffer");
    }
    char* p = (char*)buf;
    while (n > 0) {
        int count = n > INT_MAX ? INT_MAX : (int)n;
        int rc = MPI_Bcast(p, count, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) {
            return fail("MPI_Bcast", rc);
        }
        p += count;
        n -= count;
    }
    return LORAKIT_MPI_OK;
}

int lorakit_mpi_barrier(void) {
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? LORAKIT_MPI_OK : fail("MPI_Barrier", rc);
}

int lorakit_mpi_abort(int code) {
    int started = 0;
    MPI_Initialized(&started);
    if (!started) {
        return invalid("lorakit_mpi_abort: MPI is not initialised");
    }
    int rc = MPI_Abort(MPI_COMM_WORLD, code);
    return fail("MPI_Abort", rc);
}
