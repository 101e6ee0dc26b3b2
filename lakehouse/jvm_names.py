"""Remember which Java class or package a name on the Python side stands for.

Every ``F.col(...)``, every PyDeequ constraint and every ``spark._jvm.io.delta...`` access walks
py4j's view of the JVM one name at a time, and py4j asks the JVM afresh on each step: "is
``functions`` a class?" costs a round trip and, on the JVM side, a failed ``Class.forName`` for each
of the packages PySpark imports (each failure searches every JAR on the class path) before
``org.apache.spark.sql.functions`` is found. Measured on demo dates (2 cores, 2026-11-28):
about 12,000 such lookups per date; ``F.col("x")`` took 2.2 ms, of which 0.56 ms was finding
``functions``, and 0.31 ms with the names kept. The effect on a whole date is small: Python CPU
6.2-7.2 s -> 4.8-5.3 s per warm date; wall time and JVM CPU did not change beyond run-to-run noise
(the lookups mostly overlapped Spark work in other threads; docs/benchmarks.md, 2026-11-28).

The names never change meaning while the JVM lives (the class path is fixed when the session
starts), so :func:`remember_names` makes each view, package and class keep what it found as a plain
attribute: the second lookup of a name is an ordinary Python attribute read. Kept: classes,
packages and static methods. Not kept: static fields (their value can change) and failed lookups
(they raise, as before).
"""

from __future__ import annotations

from py4j.java_gateway import JavaClass, JavaMember, JavaPackage, JVMView


def _keep(owner, name: str, found):
    if isinstance(found, JavaClass) and not isinstance(found, _Class):
        found.__class__ = _Class
    elif isinstance(found, JavaPackage) and not isinstance(found, _Package):
        found.__class__ = _Package
    elif not isinstance(found, JavaMember):
        return found  # a static field's current value: asked for again next time
    owner.__dict__[name] = found  # found by normal attribute lookup from now on
    return found


class _Remembering:
    def __getattr__(self, name):
        return _keep(self, name, super().__getattr__(name))


class _View(_Remembering, JVMView):
    pass


class _Package(_Remembering, JavaPackage):
    pass


class _Class(_Remembering, JavaClass):
    pass


def remember_names(view: JVMView) -> JVMView:
    """Make ``view`` (a session's ``_jvm``) and everything reached through it remember its names."""
    if type(view) is JVMView:
        view.__class__ = _View
    return view
