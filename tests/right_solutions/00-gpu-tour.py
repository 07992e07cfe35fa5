# Right answers written another way than lab 00's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="units_folded_into_one_factor" cell="bandwidth" passes=["bandwidth_tests"]
def theoretical_bandwidth_gbs(memory_clock_khz, bus_width_bits):
    bytes_per_transfer = bus_width_bits / 8
    transfers_per_s = 2 * memory_clock_khz * 1_000
    return float(transfers_per_s * bytes_per_transfer / 10**9)

# %% right="khz_to_gb_in_one_division" cell="bandwidth" passes=["bandwidth_tests"]
def theoretical_bandwidth_gbs(memory_clock_khz, bus_width_bits):
    return memory_clock_khz * 2 * (bus_width_bits / 8) / 1e6  # kHz * 1e3 / 1e9

# %% right="flops_per_clock_first" cell="peak_fp32" passes=["peak_fp32_tests"]
def peak_fp32_tflops(sm_count, cores_per_sm, clock_khz):
    flops_per_clock = 2 * sm_count * cores_per_sm  # one FMA per lane per clock
    return flops_per_clock * (clock_khz * 1_000) / 10**12

# %% right="khz_to_tera_in_one_division" cell="peak_fp32" passes=["peak_fp32_tests"]
def peak_fp32_tflops(sm_count, cores_per_sm, clock_khz):
    return float(sm_count * cores_per_sm * 2 * clock_khz) / 1e9

# %% right="float_division_and_conditional" cell="roofline" passes=["intensity_tests", "roofline_tests"]
def arithmetic_intensity(flops, bytes_moved):
    return float(flops) / float(bytes_moved)


def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    memory_roof = intensity * bandwidth_gbs
    return peak_gflops if memory_roof >= peak_gflops else memory_roof

# %% right="sorted_roofs" cell="roofline" passes=["intensity_tests", "roofline_tests"]
def arithmetic_intensity(flops, bytes_moved):
    return flops / bytes_moved * 1.0


def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    return sorted([peak_gflops, bandwidth_gbs * intensity])[0]

# %% right="bytes_per_ms" cell="copy_time" passes=["copy_time_tests"]
def copy_time_ms(nbytes, bandwidth_gbs):
    bytes_per_ms = bandwidth_gbs * 1e9 / 1e3
    return nbytes / bytes_per_ms

# %% right="one_division" cell="copy_time" passes=["copy_time_tests"]
def copy_time_ms(nbytes, bandwidth_gbs):
    return float(nbytes) / bandwidth_gbs / 1e6
