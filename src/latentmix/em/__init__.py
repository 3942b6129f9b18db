"""The EM engine: one loop over a lower bound, and the reducers that feed it statistics."""

from latentmix.em._data import ArrayData, DataSource, as_data_source
from latentmix.em._loop import EMFamily, EMResult, run_em

__all__ = ["ArrayData", "DataSource", "EMFamily", "EMResult", "as_data_source", "run_em"]
