# Jupyter Server settings for every trainee's server (copied to /etc/jupyter/ in the lab image; the
# integration tests point JUPYTER_CONFIG_PATH here).
c = get_config()  # noqa: F821 (provided by traitlets when the server loads the file)

# A room of trainees opens its first notebook within the same minutes, on shared CPUs: a kernel can
# take longer than Jupyter Server's 60 s to answer its first kernel_info request. Past that the
# server closes the notebook's connection ("the kernel's websocket closed", a dead notebook for the
# trainee). Wait up to 3 minutes: the notebook opens late instead. Seen in tests/hub/test_hub_load.py
# (30 trainees at once on 2 loaded cores: one kernel missed the 60 s).
c.MappingKernelManager.kernel_info_timeout = 180

# The Assignments tab's refusals (a submit over the exchange's budget, a planted folder...) as the trainee's one
# line in their language, not nbgrader's Python traceback (techday/hub/labrefusals.py).
c.ServerApp.jpserver_extensions.update({"techday.hub.labrefusals": True})
