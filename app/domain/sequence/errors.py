from app.errors import AppError, Conflict, NotFound, ValidationFailed


class TransferRefused(AppError):
    """A transfer refused by a safeguard (per-transfer or daily limit) or definitely by
    Sequence: 400, as the seed answers both (``detail`` as the seed words it)."""

    status_code = 400
    code = "transfer_refused"


class TransferLimitExceeded(TransferRefused):
    code = "transfer_limit_exceeded"


class InstantNotSupported(TransferRefused):
    code = "instant_not_supported"


class InvalidTransfer(ValidationFailed):
    code = "invalid_transfer"


class PodNotFound(NotFound):
    code = "pod_not_found"


class AmbiguousPodName(Conflict):
    code = "ambiguous_pod_name"


class SequenceTransferNotFound(NotFound):
    code = "transfer_not_found"


class FundingNotFound(NotFound):
    code = "funding_not_found"


class NotConnected(Conflict):
    """The owner has no Sequence connection and the deployment has no default one."""

    code = "sequence_not_connected"


class UpstreamFailed(AppError):
    """Sequence failed or could not be reached (the seed's 502)."""

    status_code = 502
    code = "upstream_failed"
    title = "Bad gateway"


class InvalidFunding(ValidationFailed):
    code = "invalid_funding"


class ConnectionBusy(Conflict):
    code = "sequence_transfers_unresolved"


class InvalidConnection(ValidationFailed):
    code = "invalid_connection"
