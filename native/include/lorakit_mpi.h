/*
 * lorakit_mpi.h -- the C ABI of liblorakit_mpi.so, the process-group shim called from Java through Panama FFM
 * (ai.lorakit.gpu.dist.MpiShim). Compiled by mpicc against the mpi.h of the MPI that will run it: Open MPI's and
 * MPICH's handles differ (Open MPI's MPI_COMM_WORLD is the address of a global struct), so no MPI handle, datatype
 * or op crosses this boundary: Java sees ints, longs and host pointers only. Every call works on MPI_COMM_WORLD.
 *
 * Conventions: functions return LORAKIT_MPI_OK (0) or LORAKIT_MPI_ERR (1); on failure lorakit_mpi_last_error()
 * names the call and MPI's error string. MPI_ERRORS_RETURN is set on MPI_COMM_WORLD, so a failed collective
 * returns instead of aborting the process. Java checks lorakit_mpi_abi_version() against MpiShim.ABI_VERSION.
 */
#ifndef LORAKIT_MPI_H
#define LORAKIT_MPI_H

#ifdef __cplusplus
extern "C" {
#endif

#define LORAKIT_MPI_ABI_VERSION 1

#if defined(__GNUC__)
#define LORAKIT_MPI_API __attribute__((visibility("default")))
#else
#define LORAKIT_MPI_API
#endif

#define LORAKIT_MPI_OK 0
#define LORAKIT_MPI_ERR 1

LORAKIT_MPI_API int lorakit_mpi_abi_version(void);

/* The message of the last failure ("" if none); never NULL. */
LORAKIT_MPI_API const char* lorakit_mpi_last_error(void);

/* MPI_Get_library_version's text (e.g. "Open MPI v4.1.4, ..."), first line only; never NULL. */
LORAKIT_MPI_API const char* lorakit_mpi_library_version(void);

/* MPI_Init_thread(MPI_THREAD_SERIALIZED) unless MPI is initialised already; then *rank and *size of
   MPI_COMM_WORLD. The process's SIGSEGV/SIGBUS/SIGFPE/SIGILL handlers are kept (MPI would replace the JVM's). */
LORAKIT_MPI_API int lorakit_mpi_init(int* rank, int* size);

/* MPI_Finalize if initialised and not finalised; OK otherwise. */
LORAKIT_MPI_API int lorakit_mpi_finalize(void);

/* In place: buf[0..n) = the sum over ranks of buf[0..n) (MPI_IN_PLACE, MPI_SUM). n >= 0; counts above INT_MAX
   are reduced in pieces. */
LORAKIT_MPI_API int lorakit_mpi_allreduce_sum_f32(float* buf, long long n);
LORAKIT_MPI_API int lorakit_mpi_allreduce_sum_f64(double* buf, long long n);

/* MPI_Bcast of n bytes from rank root. */
LORAKIT_MPI_API int lorakit_mpi_bcast(void* buf, long long n, int root);

LORAKIT_MPI_API int lorakit_mpi_barrier(void);

/* MPI_Abort(MPI_COMM_WORLD, code): ends every rank of the job; does not return when MPI is running. */
LORAKIT_MPI_API int lorakit_mpi_abort(int code);

#ifdef __cplusplus
}
#endif
#endif
