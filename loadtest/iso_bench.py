"""ISO 20022 intake throughput: posts MESSAGES pacs.008.001.08 messages of PER credit
transfers each (fresh UETRs, ICICI/HDFC/AXIS to ENBD/ADCB), WORKERS at a time, and
prints the transactions accepted per second and the message latencies.

    python3 loadtest/iso_bench.py KEY MESSAGES PER WORKERS [BASE_URL]

KEY is the operator's key (it sends for any bank); BASE_URL defaults to
http://127.0.0.1:8080. Run it against a release engine, nothing else on the box.
"""
import sys, time, uuid, urllib.request, concurrent.futures as cf
key = sys.argv[1]; messages = int(sys.argv[2]); per = int(sys.argv[3]); workers = int(sys.argv[4])
base = sys.argv[5] if len(sys.argv) > 5 else "http://127.0.0.1:8080"
def message(n):
    txs = "".join(f"""<CdtTrfTxInf><PmtId><EndToEndId>B{n}-{i}</EndToEndId><UETR>{uuid.uuid4()}</UETR></PmtId>
<IntrBkSttlmAmt Ccy="INR">{100 + i % 900}.00</IntrBkSttlmAmt><ChrgBr>SHAR</ChrgBr><Dbtr><Nm>bench</Nm></Dbtr>
<DbtrAgt><FinInstnId><BICFI>{['ICICINBB','HDFCINBB','AXISINBB'][i % 3]}</BICFI></FinInstnId></DbtrAgt>
<CdtrAgt><FinInstnId><BICFI>{['EBILAEAD','ADCBAEAA'][i % 2]}</BICFI></FinInstnId></CdtrAgt><Cdtr><Nm>bench</Nm></Cdtr></CdtTrfTxInf>""" for i in range(per))
    return f"""<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"><FIToFICstmrCdtTrf>
<GrpHdr><MsgId>BENCH-{n}</MsgId><CreDtTm>2026-12-04T10:00:00Z</CreDtTm><NbOfTxs>{per}</NbOfTxs><SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf></GrpHdr>{txs}</FIToFICstmrCdtTrf></Document>""".encode()
bodies = [message(n) for n in range(messages)]
def post(body):
    req = urllib.request.Request(f"{base}/api/v1/iso20022/pacs.008", data=body, method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/xml"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        text = r.read().decode()
    return time.perf_counter() - t, text.count("<TxSts>ACCP</TxSts>")
start = time.perf_counter()
with cf.ThreadPoolExecutor(workers) as ex:
    results = list(ex.map(post, bodies))
wall = time.perf_counter() - start
lat = sorted(r[0] for r in results)
accepted = sum(r[1] for r in results)
print(f"messages={messages} tx_per_message={per} workers={workers} accepted={accepted}/{messages*per} wall={wall:.2f}s tx_per_s={accepted/wall:.0f} message_p50={lat[len(lat)//2]*1000:.0f}ms message_max={lat[-1]*1000:.0f}ms bytes_per_message={len(bodies[0])}")
