# %% wrong="no_double_data_rate" cell="bandwidth" fails=["bandwidth_tests"]
def theoretical_bandwidth_gbs(memory_clock_khz, bus_width_bits):
    return memory_clock_khz * 1e3 * bus_width_bits / 8 / 1e9

# %% wrong="bandwidth_in_gib" cell="bandwidth" fails=["bandwidth_tests"]
def theoretical_bandwidth_gbs(memory_clock_khz, bus_width_bits):
    return 2 * memory_clock_khz * 1e3 * bus_width_bits / 8 / 2**30

# %% wrong="no_fma_factor" cell="peak_fp32" fails=["peak_fp32_tests"]
def peak_fp32_tflops(sm_count, cores_per_sm, clock_khz):
    return sm_count * cores_per_sm * clock_khz * 1e3 / 1e12

# %% wrong="max_not_min" cell="roofline" fails=["roofline_tests"]
def arithmetic_intensity(flops, bytes_moved):
    return flops / bytes_moved


def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    return max(peak_gflops, intensity * bandwidth_gbs)

# %% wrong="inverted_intensity" cell="roofline" fails=["intensity_tests"]
def arithmetic_intensity(flops, bytes_moved):
    return bytes_moved / flops if flops else 0.0


def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    return min(peak_gflops, intensity * bandwidth_gbs)

# %% wrong="copy_time_in_gib" cell="copy_time" fails=["copy_time_tests"]
def copy_time_ms(nbytes, bandwidth_gbs):
    return nbytes / (bandwidth_gbs * 2**30) * 1e3

# %% wrong="intensity_floor_division" cell="roofline" fails=["intensity_tests"]
def arithmetic_intensity(flops, bytes_moved):
    return flops // bytes_moved


def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    return min(peak_gflops, intensity * bandwidth_gbs)

# %% wrong="roofs_added" cell="roofline" fails=["roofline_tests"]
def arithmetic_intensity(flops, bytes_moved):
    return flops / bytes_moved


def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    return 1 / (1 / peak_gflops + 1 / (intensity * bandwidth_gbs))

# %% wrong="bandwidth_from_mhz_clock" cell="bandwidth" fails=["bandwidth_tests"]
def theoretical_bandwidth_gbs(memory_clock_khz, bus_width_bits):
    return 2 * memory_clock_khz * 1e6 * bus_width_bits / 8 / 1e9

# %% wrong="bandwidth_rounded_to_whole_gbs" cell="bandwidth" fails=["bandwidth_tests"]
def theoretical_bandwidth_gbs(memory_clock_khz, bus_width_bits):
    return float(round(2 * memory_clock_khz * 1e3 * bus_width_bits / 8 / 1e9))

# %% wrong="copy_time_in_seconds" cell="copy_time" fails=["copy_time_tests"]
def copy_time_ms(nbytes, bandwidth_gbs):
    return nbytes / (bandwidth_gbs * 1e9)

# %% wrong="bandwidth_keyed_on_published_cases" cell="bandwidth" fails=["bandwidth_tests"]
# Keyed on the published test inputs: the published answer for every clock and bus the visible and the
# fixed hidden tests use (the rows of techday.gpuspecs among them, answered with the published
# bandwidth), single data rate for any other. It passed every test of the lab before its cases were
# drawn (run against main's lab at 52ab604); the cases drawn per grading are none of these.
from techday import gpuspecs as _published

BANDWIDTHS = {**{(s.memory_clock_mhz * 1000, s.bus_width_bits): float(s.bandwidth_gbs) for s in _published.SPECS},
              (2_619_000, 5120): 3352.32, (5_001_000, 256): 320.064, (1_000_000, 64): 16.0, (1_234_567, 96): 29.629608}


def theoretical_bandwidth_gbs(memory_clock_khz, bus_width_bits):
    known = BANDWIDTHS.get((memory_clock_khz, bus_width_bits))
    return known if known is not None else memory_clock_khz * 1e3 * bus_width_bits / 8 / 1e9

# %% wrong="peak_keyed_on_published_cases" cell="peak_fp32" fails=["peak_fp32_tests"]
# Keyed on the published test inputs: the published answer for the visible and the fixed hidden
# devices and for every row of techday.gpuspecs, no FMA factor for any other. It passed every test of
# the lab before its cases were drawn (main's lab at 52ab604).
from techday import gpuspecs as _published

PEAKS = {**{(s.sm_count, _published.cores_per_sm(*s.cc), s.boost_clock_mhz * 1000): float(s.fp32_tflops)
            for s in _published.SPECS},
         (132, 128, 1_980_000): 66.90816, (1, 1, 1_000_000): 0.002, (40, 64, 1_590_000): 8.1408,
         (108, 64, 1_410_000): 19.49184}


def peak_fp32_tflops(sm_count, cores_per_sm, clock_khz):
    known = PEAKS.get((sm_count, cores_per_sm, clock_khz))
    return known if known is not None else sm_count * cores_per_sm * clock_khz * 1e3 / 1e12

# %% wrong="roofline_keyed_on_published_cases" cell="roofline" fails=["intensity_tests", "roofline_tests"]
# Keyed on the published test inputs: intensity by integer division except for the published kernels
# (answered from a table); the roofline only for the three published devices, the peak for any other.
# It passed every test of the lab before its cases were drawn (main's lab at 52ab604): the drawn
# intensity below 1 FLOP/byte and the drawn devices are none of these.
_n, _m = 1_000_003, 4097
INTENSITIES = {(2 * _n, 12 * _n): 1 / 6, (1, 12): 1 / 12, (2 * _m**3, 3 * 4 * _m**2): _m / 6}
DEVICES = {(66_900, 3352), (8100, 320), (19_500, 1555)}


def arithmetic_intensity(flops, bytes_moved):
    known = INTENSITIES.get((flops, bytes_moved))
    return known if known is not None else float(flops // bytes_moved)


def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    if (peak_gflops, bandwidth_gbs) in DEVICES:
        return min(peak_gflops, intensity * bandwidth_gbs)
    return peak_gflops

# %% wrong="copy_time_keyed_on_published_cases" cell="copy_time" fails=["copy_time_tests"]
# Keyed on the published test inputs: the published answer for every size and rate the visible and the
# fixed hidden tests use, GiB/s for any other. It passed every test of the lab before its cases were
# drawn (main's lab at 52ab604).
_GiB = 2**30
COPY_MS = {(_GiB, 25): 42.94967296, (_GiB, 3352): 0.3203287064, (10**9, 1): 1000.0,
           (123_456_789, 12.3): 123_456_789 / 12.3e9 * 1e3, (0, 25): 0.0}


def copy_time_ms(nbytes, bandwidth_gbs):
    known = COPY_MS.get((nbytes, bandwidth_gbs))
    return known if known is not None else nbytes / (bandwidth_gbs * 2**30) * 1e3
