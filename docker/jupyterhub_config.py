# JupyterHub on one GPU server, in the grader image; one container per trainee, from the lab image
# (docker/Dockerfile, target lab: released notebooks only, no solution).
# Started by docker/compose.yaml; check it with `techday hub check --config docker/jupyterhub_config.py`.
# The Tech Day settings (sign-in, nbgrader roles and course service, GPU hand-out, culling) come from
# techday.hub.config.configure, the same function the integration tests start a real hub with.
#
# Settings, from the environment (docker/compose.yaml sets them):
#   TECHDAY_COURSE_ID      nbgrader course id (default: course/syllabus.toml's id)
#   TECHDAY_USERS_FILE     accounts CSV from `techday hub users` (default /srv/jupyterhub/users.csv)
#   TECHDAY_GPUS           devices to hand out, one per trainee: "0,1,2,3" or MIG UUIDs from `nvidia-smi -L`;
#                          one this machine does not show is named in the log and not handed out
#   TECHDAY_GPU_OVERFLOW   refuse (default) or cpu: what a trainee gets when every GPU is taken
#   TECHDAY_EXCHANGE       nbgrader exchange, a volume shared by every container (/srv/nbgrader/exchange)
#   TECHDAY_COURSE_ROOT    the grader's course root, built into the grader image (/srv/nbgrader/course)
#   TECHDAY_CULL_TIMEOUT   seconds idle before a server is stopped (3600)
#   TECHDAY_IMAGE          the trainees' image, target lab (techday-lab:latest); never the grader image
#   TECHDAY_MEM_LIMIT      memory per trainee container (16G)
#   TECHDAY_CPU_LIMIT      CPU cores per trainee container (4; a fraction is fine; 0: no limit)
#   TECHDAY_PIDS_LIMIT     processes and threads per trainee container (4096; 0: no limit)
#   TECHDAY_DISK_LIMIT     disk per trainee, in the home volume and again in the container's layer ("": none;
#                          "5G" needs Docker's data root on XFS mounted with pquota, docker/README.md "Disk")
#   TECHDAY_DISK_MIN_FREE  no server starts while the disk under the hub's state has less free (2G)
#   TECHDAY_SPAWN_LIMIT    servers starting at once (20); past it JupyterHub refuses, and the page retries
#   TECHDAY_COURSE_SERVICE_URL, TECHDAY_COURSE_SERVICE_TOKEN
#                          the course service (formgrader) in compose's `course` container, as the grader
#
# Each trainee's container runs as the uid users.csv gives the account (techday.hub.config.apply_identity).
import logging
import os

from techday.hub.config import HubSettings, configure, drop_missing_gpus

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

settings = HubSettings.from_env()
settings.gpus = drop_missing_gpus(settings.gpus, logging.getLogger("techday").error)
configure(c, settings)

# The proxy listens on every interface of the hub container, and compose publishes port 8000 only.
c.JupyterHub.bind_url = "http://:8000"
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = "hub"

c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.image = os.environ.get("TECHDAY_IMAGE", "techday-lab:latest")
c.DockerSpawner.network_name = os.environ.get("TECHDAY_NETWORK", "techday")
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.remove = True  # the container goes, the home volume stays
c.DockerSpawner.notebook_dir = "/home/jovyan/work"
c.DockerSpawner.volumes = {
    "techday-home-{username}": "/home/jovyan/work",            # a trainee's work survives restarts
    os.environ.get("TECHDAY_EXCHANGE_VOLUME", "techday-exchange"): str(settings.exchange),
}
# PyTorch DataLoader workers share tensors through /dev/shm; Docker's default of 64 MB is too small.
c.DockerSpawner.extra_host_config = {"shm_size": "2g"}
