"""The Q.850 cause of a call that failed with a SIP final response (RFC 3398).

Causes are named as FreeSWITCH names them (``USER_BUSY``, ``NO_USER_RESPONSE``...), the
names the other switch formats store, so one filter finds busy calls from any switch.
"""

from __future__ import annotations

from collections.abc import Mapping

# SIP final response -> Q.850 cause (RFC 3398 section 8.2.6.1), by FreeSWITCH's names.
# 487 (the caller cancelled) has no RFC 3398 entry: FreeSWITCH's ORIGINATOR_CANCEL.
SIP_CAUSES: Mapping[int, str] = {
    400: "NORMAL_TEMPORARY_FAILURE",
    401: "CALL_REJECTED",
    402: "CALL_REJECTED",
    403: "CALL_REJECTED",
    404: "UNALLOCATED_NUMBER",
    405: "SERVICE_UNAVAILABLE",
    406: "SERVICE_NOT_IMPLEMENTED",
    407: "CALL_REJECTED",
    408: "RECOVERY_ON_TIMER_EXPIRE",
    410: "NUMBER_CHANGED",
    413: "INTERWORKING",
    414: "INTERWORKING",
    415: "SERVICE_NOT_IMPLEMENTED",
    416: "INTERWORKING",
    420: "INTERWORKING",
    421: "INTERWORKING",
    423: "INTERWORKING",
    480: "NO_USER_RESPONSE",
    481: "NORMAL_TEMPORARY_FAILURE",
    482: "EXCHANGE_ROUTING_ERROR",
    483: "EXCHANGE_ROUTING_ERROR",
    484: "INVALID_NUMBER_FORMAT",
    485: "UNALLOCATED_NUMBER",
    486: "USER_BUSY",
    487: "ORIGINATOR_CANCEL",
    488: "INTERWORKING",
    500: "NORMAL_TEMPORARY_FAILURE",
    501: "SERVICE_NOT_IMPLEMENTED",
    502: "NETWORK_OUT_OF_ORDER",
    503: "NORMAL_TEMPORARY_FAILURE",
    504: "RECOVERY_ON_TIMER_EXPIRE",
    505: "INTERWORKING",
    513: "INTERWORKING",
    600: "USER_BUSY",
    603: "CALL_REJECTED",
    604: "UNALLOCATED_NUMBER",
    606: "BEARERCAPABILITY_NOTAVAIL",
}
OTHER_FAILURE = "NORMAL_UNSPECIFIED"  # a code the table does not list


def sip_cause(code: int) -> str:
    """The Q.850 cause name of a failed INVITE's final SIP response code."""
    return SIP_CAUSES.get(code, OTHER_FAILURE)
