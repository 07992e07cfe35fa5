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
