"""The EM engine: one loop over a lower bound, and the data sources it reduces over.

In memory (:class:`ArrayData`), out of core (:class:`ChunkedData`: memory-mapped ``.npy``,
Parquet, chunk factories), on Dask (:class:`DaskData`), and on streams (:class:`StepwiseEM`).
"""

from latentmix.em._dask import DaskData
from latentmix.em._data import ArrayData, DataSource, as_data_source
from latentmix.em._fit_source import (
    as_source,
    fit_gaussian_mixture_on,
    fit_kmeans_on,
    is_out_of_core,
)
from latentmix.em._init_scalable import kmeans_parallel
from latentmix.em._loop import EMFamily, EMResult, run_em
from latentmix.em._online import StepwiseEM, partial_fit_gaussian_mixture, partial_fit_kmeans
from latentmix.em._stream import ChunkedData

__all__ = [
    "ArrayData",
    "ChunkedData",
    "DaskData",
    "DataSource",
    "EMFamily",
    "EMResult",
    "StepwiseEM",
    "as_data_source",
    "as_source",
    "fit_gaussian_mixture_on",
    "fit_kmeans_on",
    "is_out_of_core",
    "kmeans_parallel",
    "partial_fit_gaussian_mixture",
    "partial_fit_kmeans",
    "run_em",
]
