package ai.lorakit.cli;

import ai.lorakit.gpu.BackendRegistry;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.blas.LibraryLocator;
import ai.lorakit.gpu.cuda.CudaProbe;
import ai.lorakit.gpu.dist.DistributedException;
import ai.lorakit.gpu.dist.Nccl;
import ai.lorakit.gpu.dist.ProcessGroups;
import ai.lorakit.gpu.ffm.LorakitNative;
import ai.lorakit.gpu.opencl.OpenClDevice;
import ai.lorakit.gpu.opencl.OpenClDeviceInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code lorakit info}: every backend in auto order, available or why not; the native libraries (liblorakit.so and
 * the minimum glibc it needs, where cuBLAS loads from); the OpenCL platforms and devices (the choices of
 * {@code --device}); whether the default model is built in; and the data-parallel section: whether MPI (training
 * under mpirun/srun) and NCCL (the CUDA backends' device all-reduce) load, from where, or why not.
 */
@Command(name = "info", description = "List the backends (cuda-ffm, cuda-jcuda, opencl, cpu) and why any cannot load, "
        + "and the OpenCL platforms and devices.", mixinStandardHelpOptions = true)
final class InfoCommand implements Callable<Integer> {

    private final Cli cli;

    @Option(names = "--debug", description = "Print stack traces of errors.")
    boolean debug;

    InfoCommand(Cli cli) {
        this.cli = cli;
    }

    @Override
    public Integer call() {
        cli.out.println("lorakit backends (auto order):");
        for (BackendRegistry.Status s : BackendRegistry.list()) {
            cli.out.println("  " + s);
        }
        printNativeLibraries();
        printOpenClDevices();
        cli.out.println("embedded default model: " + (ModelSource.hasDefault() ? "present" : "not in this build"));
        printDataParallel();
        return 0;
    }

    /** liblorakit.so (and the glibc it needs), then where cuBLAS loads from. */
    private void printNativeLibraries() {
        int driver = CudaProbe.get().driverVersion();
        cli.out.println("native libraries:");
        cli.out.println("  liblorakit.so  " + LorakitNative.describeLoad());
        cli.out.println("  cuBLAS         " + LibraryLocator.describe(LibraryLocator.CUBLAS, driver));
    }

    /** MPI, then NCCL (what {@code lorakit train} under mpirun reduces the gradients with on each backend). */
    private void printDataParallel() {
        cli.out.println("data-parallel training (mpirun/srun):");
        cli.out.println("  MPI   " + ProcessGroups.mpiStatus());
        String nccl;
        try {
            nccl = "available: " + Nccl.load().describe() + "; cuda-ffm and cuda-jcuda all-reduce the gradients"
                    + " on the device";
        } catch (DistributedException e) {
            nccl = "unavailable: " + e.getMessage() + "; cuda-ffm and cuda-jcuda then all-reduce them on the host"
                    + " over MPI";
        }
        cli.out.println("  NCCL  " + nccl);
    }

    /** Platforms, then their devices with the selectors --device accepts (N and P.D). */
    private void printOpenClDevices() {
        cli.out.println("OpenCL platforms and devices (--device N, P.D or a name substring):");
        List<OpenClDeviceInfo> devices;
        try {
            devices = OpenClDevice.devices();
        } catch (GpuException | LinkageError e) {
            cli.out.println("  none: " + e.getMessage());
            return;
        }
        int previousPlatform = -1;
        for (int i = 0; i < devices.size(); i++) {
            OpenClDeviceInfo d = devices.get(i);
            if (d.platformIndex() != previousPlatform) {
                cli.out.println("  platform " + d.platformIndex() + ": " + d.platformName() + " (" + d.platformVersion() + ")");
                previousPlatform = d.platformIndex();
            }
            cli.out.println(String.format(Locale.ROOT, "    [%d] %s  %-11s %s: %d compute units, %s, %s, %d MiB%s", i, d.id(),
                    d.type(), d.deviceName(), d.computeUnits(), d.deviceVersion(), d.openClC(), d.globalMemBytes() >> 20,
                    d.usable() ? "" : " (unusable: needs OpenCL C 1.2 and a compiler)"));
        }
        if (devices.isEmpty()) {
            cli.out.println("  none: the OpenCL platforms list no device");
        }
    }
}
