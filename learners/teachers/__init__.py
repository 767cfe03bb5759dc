"""Teachers: learners whose whole learning history we record. Importing this registers them."""
from learners.teachers.base import TEACHERS, TeacherBase, TeacherSpec, make_teacher, register_teacher

# Registration happens on import of each family's module.
from learners.teachers import tabular as _tabular  # noqa: F401,E402
from learners.teachers import bandit as _bandit  # noqa: F401,E402
from learners.teachers import dqn as _dqn  # noqa: F401,E402  (torch is imported lazily)
from learners.teachers import noisy_optimal as _noisy_optimal  # noqa: F401,E402

__all__ = ["TEACHERS", "TeacherBase", "TeacherSpec", "make_teacher", "register_teacher"]
