"""Hard clustering: K-means on the EM engine, k-means++ seeding, the silhouette coefficient."""

from latentmix.cluster._kmeans import KMeans, kmeans_plusplus
from latentmix.cluster._silhouette import silhouette_samples, silhouette_score

__all__ = ["KMeans", "kmeans_plusplus", "silhouette_samples", "silhouette_score"]
