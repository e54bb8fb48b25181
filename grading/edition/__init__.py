"""The student edition and JupyterLab in student mode.

publish.py       `course publish DIR`: the edition students clone, scanned for instructor material
lab.py           `course lab`: JupyterLab on this checkout, in student or instructor mode
student_lab.py   the edition's tools/lab.py (standard library only, copied verbatim)
workcopy.py      the edition's tools/workcopy.py: fill work/ from notebooks/, never overwrite
"""
