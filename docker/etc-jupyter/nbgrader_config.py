# nbgrader settings for every server the hub starts (copied to /etc/jupyter/ in the lab image; the
# integration tests point JUPYTER_CONFIG_PATH here). The course root's own nbgrader_config.py, read
# after this one, adds the grader's settings for the course service.
import os

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads the file)

c.CourseDirectory.course_id = os.environ.get("TECHDAY_COURSE_ID", "techday")
c.Exchange.root = os.environ.get("TECHDAY_EXCHANGE", "/srv/nbgrader/exchange")

# Every trainee container runs as the same Unix user (jovyan): the hub's user name is the trainee's
# nbgrader identity. Not for the course service, whose collect must gather every student.
if os.environ.get("JUPYTERHUB_USER") and not os.environ.get("JUPYTERHUB_SERVICE_NAME"):
    c.CourseDirectory.student_id = os.environ["JUPYTERHUB_USER"]
