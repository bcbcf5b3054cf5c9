from twister.workflows.job import DownloadJobWorkflow

__all__ = ["DownloadJobWorkflow"]
