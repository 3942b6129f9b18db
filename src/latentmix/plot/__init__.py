"""Plots for latentmix models (matplotlib), usable from Python and by ``latentmix report``.

Every function draws on a given ``ax`` or on a new figure made without ``pyplot`` (no
global state, no GUI), and returns the Axes (or Figure, for multi-panel plots); save it
with ``ax.figure.savefig("plot.png")`` or :func:`to_png`.

=================================  ==================================================
function                           picture
=================================  ==================================================
:func:`plot_clusters`              2-D scatter by cluster with 1/2/3-sigma ellipses
                                   (principal axes when there are more than 2 features)
:func:`plot_pairs`                 pairs plot by cluster, with 2-D marginal ellipses
:func:`plot_criterion`             BIC/AIC/ICL against K, one line per covariance type
:func:`plot_lower_bounds`          the log-likelihood trace of a fit
:func:`plot_silhouette`            sorted silhouette bars per cluster
:func:`plot_uncertainty`           classification uncertainty 1 − max p(k | x)
:func:`plot_sample_grid`           a grid of VAE samples (images)
:func:`plot_reconstructions`       inputs above their VAE reconstructions
:func:`plot_latent`                a VAE's latent codes, coloured by label
=================================  ==================================================
"""

from latentmix.plot._base import to_png
from latentmix.plot._mixture import plot_clusters, plot_lower_bounds, plot_pairs, plot_uncertainty
from latentmix.plot._selection import plot_criterion
from latentmix.plot._silhouette import plot_silhouette
from latentmix.plot._vae import plot_latent, plot_reconstructions, plot_sample_grid

__all__ = [
    "plot_clusters",
    "plot_criterion",
    "plot_latent",
    "plot_lower_bounds",
    "plot_pairs",
    "plot_reconstructions",
    "plot_sample_grid",
    "plot_silhouette",
    "plot_uncertainty",
    "to_png",
]
