"""course_lib: the numpy library behind the neural-networks course.

    course_lib.nn         activations, losses, Dense/Dropout, Sequential, optimizers
    course_lib.linear     linear/logistic/softmax regression and the perceptron
    course_lib.gradcheck  numerical gradients and rel_error
    course_lib.data       seeded toy datasets and small real datasets (offline)
    course_lib.plots      decision boundaries, loss curves, network diagrams
    course_lib.widgets    interactive demos (ipywidgets)
    course_lib.checks     exercise checks with targeted hints

Conventions: rows are examples (X: (m, n_in)), a Dense layer computes
Z = X @ W + b with W: (n_in, n_out), and everything random takes ``seed=``.
"""

__version__ = "0.1.0"
