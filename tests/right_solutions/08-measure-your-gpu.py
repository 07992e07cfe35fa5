# Right answers written another way than lab 08's solution: each must pass the tests it names (hidden
# tests included). A test that fails one rejects a right answer (tests/grading/test_right_solutions.py).

# %% right="one_division_and_explicit_none_checks" cell="rates" passes=["rates_tests"]
def achieved_gbs(result):
    return result["bytes"] / (result["seconds"]["median"] * 1e9)


def fraction_of_limit(doc, result):
    key = result.get("limit_key")
    if key is None:
        return None
    limit = (doc.get("limits") or {}).get(key)
    if limit is None or limit == 0:
        return None
    return result["value"] / limit

# %% right="try_except_key_error" cell="rates" passes=["rates_tests"]
def achieved_gbs(result):
    seconds = float(result["seconds"]["median"])
    return float(result["bytes"]) / seconds * 1e-9


def fraction_of_limit(doc, result):
    try:
        limit = doc["limits"][result["limit_key"]]
    except (KeyError, TypeError):  # no such limit, or limit_key is None
        return None
    return result["value"] / limit if limit else None

# %% right="float_division_and_ge_comparison" cell="roofline" passes=["roofline_tests"]
def intensity(result):
    return float(result["flops"]) / float(result["bytes"])


def bound(intensity_value, peak_gflops, bandwidth_gbs):
    ridge = peak_gflops / bandwidth_gbs
    if intensity_value >= ridge:
        return "compute"
    return "memory"

# %% right="sorted_by_direction" cell="best" passes=["best_tests"]
def best_implementation(doc, family, kernel):
    timed = [r for r in doc["results"]
             if (r["family"], r["kernel"], r["status"]) == (family, kernel, "ok")]
    if not timed:
        return None
    higher_is_better = timed[0]["metric"] in ("gbs", "gflops")
    return sorted(timed, key=lambda r: r["value"], reverse=higher_is_better)[0]["impl"]

# %% right="explicit_loop" cell="best" passes=["best_tests"]
def best_implementation(doc, family, kernel):
    winner, best_value = None, None
    for r in doc["results"]:
        if r["family"] != family or r["kernel"] != kernel or r["status"] != "ok":
            continue
        v = r["value"] if r["metric"] == "us" else -r["value"]  # lower is better after the sign flip
        if best_value is None or v < best_value:
            winner, best_value = r["impl"], v
    return winner
