"""Evaluation of trained taggers: ROC/AUC, discriminants, robustness under FGSM/PGD, figures.

=====================  ====================================================
:mod:`.metrics`        weighted ROC and AUC (numpy), flavour groups, BvsL/CvsB/CvsL
:mod:`.bootstrap`      seeded bootstrap of the AUC (uncertainty bands), DeLong's analytic error
:mod:`.predict`        a checkpoint's probabilities on a preprocessing split (optionally attacked)
:mod:`.plots`          loss curves, ROC, robustness
:mod:`.distributions`  score, discriminant and raw input distributions per flavour
:mod:`.figure`         the frame of every figure: panels, CMS header, legend outside, saving
:mod:`.report`         :func:`evaluate`: every figure plus ``auc.json``
=====================  ====================================================
"""
from .metrics import auc, discriminant_rocs, discriminant_values, flavour_groups, roc_curve
from .report import evaluate

__all__ = ["evaluate", "roc_curve", "auc", "discriminant_rocs", "discriminant_values", "flavour_groups"]
