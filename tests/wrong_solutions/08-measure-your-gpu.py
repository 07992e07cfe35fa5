# %% wrong="gib_instead_of_gb" cell="rates" fails=["rates_tests"]
def achieved_gbs(result):
    return result["bytes"] / result["seconds"]["median"] / 2**30


def fraction_of_limit(doc, result):
    key = result.get("limit_key")
    limit = doc["limits"].get(key) if key else None
    if not limit:
        return None
    return result["value"] / limit

# %% wrong="fraction_always_of_dram" cell="rates" fails=["rates_tests"]
def achieved_gbs(result):
    return result["bytes"] / result["seconds"]["median"] / 1e9


def fraction_of_limit(doc, result):
    limit = doc["limits"].get("dram_gbs")
    if not limit:
        return None
    return result["value"] / limit

# %% wrong="fastest_repetition_not_median" cell="rates" fails=["rates_tests"]
def achieved_gbs(result):
    return result["bytes"] / result["seconds"].get("min", result["seconds"]["median"]) / 1e9


def fraction_of_limit(doc, result):
    key = result.get("limit_key")
    limit = doc["limits"].get(key) if key else None
    if not limit:
        return None
    return result["value"] / limit

# %% wrong="bytes_per_flop" cell="roofline" fails=["roofline_tests"]
def intensity(result):
    return result["bytes"] / result["flops"]


def bound(intensity_value, peak_gflops, bandwidth_gbs):
    return "memory" if intensity_value < peak_gflops / bandwidth_gbs else "compute"

# %% wrong="ridge_counts_as_memory" cell="roofline" fails=["roofline_tests"]
def intensity(result):
    return result["flops"] / result["bytes"]


def bound(intensity_value, peak_gflops, bandwidth_gbs):
    return "memory" if intensity_value <= peak_gflops / bandwidth_gbs else "compute"

# %% wrong="counts_wrong_implementations" cell="best" fails=["best_tests"]
def best_implementation(doc, family, kernel):
    rows = [r for r in doc["results"] if r["family"] == family and r["kernel"] == kernel and "value" in r]
    if not rows:
        return None
    pick = min if rows[0]["metric"] == "us" else max
    return pick(rows, key=lambda r: r["value"])["impl"]

# %% wrong="latency_higher_is_better" cell="best" fails=["best_tests"]
def best_implementation(doc, family, kernel):
    ok = [r for r in doc["results"] if r["family"] == family and r["kernel"] == kernel and r["status"] == "ok"]
    if not ok:
        return None
    return max(ok, key=lambda r: r["value"])["impl"]

# %% wrong="gflops_counted_as_latency" cell="best" fails=["best_tests"]
def best_implementation(doc, family, kernel):
    ok = [r for r in doc["results"] if r["family"] == family and r["kernel"] == kernel and r["status"] == "ok"]
    if not ok:
        return None
    pick = max if ok[0]["metric"] == "gbs" else min
    return pick(ok, key=lambda r: r["value"])["impl"]

# %% wrong="fraction_copied_from_file" cell="rates" fails=["rates_tests"]
def achieved_gbs(result):
    return result["bytes"] / result["seconds"]["median"] / 1e9


def fraction_of_limit(doc, result):
    return result.get("fraction")

# %% wrong="gbs_copied_from_value" cell="rates" fails=["rates_tests"]
def achieved_gbs(result):
    return result.get("value") or result["bytes"] / result["seconds"]["median"] / 1e9


def fraction_of_limit(doc, result):
    key = result.get("limit_key")
    limit = doc["limits"].get(key) if key else None
    if not limit:
        return None
    return result["value"] / limit

# %% wrong="intensity_floor_division" cell="roofline" fails=["roofline_tests"]
def intensity(result):
    return result["flops"] // result["bytes"]


def bound(intensity_value, peak_gflops, bandwidth_gbs):
    return "memory" if intensity_value < peak_gflops / bandwidth_gbs else "compute"
