/* Every size limit of the project, one commented line each. Values that come
 * from the network or from disk are checked against these before anything is
 * allocated. The daemon's configuration can override the runtime ones. */
#ifndef DREAM_COMMON_LIMITS_H
#define DREAM_COMMON_LIMITS_H

#define DREAM_MAX_COLS          65536u       /* columns per table (features + target) */
#define DREAM_MAX_ROWS          (1ull << 40) /* rows per dataset */
#define DREAM_MAX_SEGMENT_ROWS  (1u << 24)   /* rows per sealed segment / file */
#define DREAM_MAX_NAME          128u         /* bytes in a column or dataset name */
#define DREAM_MAX_SCALE         9u           /* decimal digits after the point */
#define DREAM_MAX_CELL          128u         /* bytes in one CSV cell */
#define DREAM_MAX_CLASSES       65536u       /* distinct classes of a classification target */
#define DREAM_MAX_CHUNK_BITS    (DREAM_MAX_COLS * 64u) /* bits in one preprocessed row */
#define DREAM_MAX_BLOCK_BYTES   (64u << 20)  /* bytes of one record block, compressed or not */
#define DREAM_MAX_PART_BYTES    (1ull << 40) /* bytes of one container part */
#define DREAM_MAX_FRAME_DEFAULT (64u << 20)  /* bytes in one protocol frame (configurable) */
#define DREAM_MAX_IDX_DIMS      8u           /* dimensions of an IDX array */
#define DREAM_MAX_PAR_THREADS   16u          /* threads of one dm_par_each (past it: the caller) */

/* Protocol (proto/). */
#define DREAM_PROTOCOL_VERSION  1u         /* version of dream.proto spoken */
#define DREAM_MAX_BATCH_ROWS    (1u << 24) /* rows in one Ingest, ExportChunk or Predict */
#define DREAM_MAX_BATCH_SIZE    (1u << 20) /* rows in one streamed Batch / training mini-batch */
#define DREAM_MAX_TOKEN         4096u      /* bytes in an authentication token */
#define DREAM_MAX_RESUME_TOKEN  256u       /* bytes in a GetBatches resume token */
#define DREAM_MAX_PATH          4096u      /* bytes in a server-side path (Backup) */
#define DREAM_MAX_EPOCHS        100000u    /* epochs of one training job */
#define DREAM_MAX_HIDDEN_LAYERS 2u         /* hidden layers of an mlp */
#define DREAM_MAX_HIDDEN_WIDTH  65536u     /* units in one hidden layer */
#define DREAM_MAX_K             65536u     /* k-means clusters */
#define DREAM_UNPACK_FACTOR                                                                        \
        2u /* protobuf unpack may allocate this many bytes per frame byte...                       \
            */
#define DREAM_UNPACK_SLACK (16u << 20) /* ...plus this many */

/* Training (train/). */
#define DREAM_MAX_MODEL_WEIGHTS (1ull << 28) /* numbers in one model (weights, biases, centres) */
#define DREAM_MAX_JOB_RECORD    (1ull << 32) /* bytes of one stored job record (model included) */

/* Store (storage/). */
#define DREAM_MAX_STAGED_BATCH_BYTES                                                               \
        (1ull << 30)                          /* bytes of one staged batch (rows x cols x 8)       \
                                               */
#define DREAM_MAX_SUFFSTATS_FEATURES 256u     /* features for which X'X and X'y are kept */
#define DREAM_MAX_DATASETS           1000000u /* datasets in one store */

/* Server (server/). */
#define SRV_MAX_LISTEN                   16u        /* listen addresses */
#define SRV_MAX_WORKERS                  1024u      /* libuv's thread pool maximum */
#define SRV_MAX_JOBS                     1024u      /* running or queued training jobs */
#define SRV_MAX_BLAS_THREADS             256u       /* OpenBLAS threads per job */
#define SRV_MAX_CONNECTIONS              1000000u   /* largest connection cap accepted */
#define SRV_MIN_FRAME                    4096u      /* smallest max_frame accepted */
#define SRV_MAX_CONFIG_BYTES             (1u << 20) /* bytes of a config file */
#define SRV_MAX_CONFIG_LINE              8192u      /* bytes of one config line */
#define SRV_MAX_KEY_SUGGEST              64u        /* key length compared for a hint */
#define SRV_MAX_TOKENS                   4096u      /* tokens in a token file */
#define SRV_MAX_TOKEN_FILE_BYTES         (4u << 20) /* bytes of a token file */
#define SRV_MAX_INFLIGHT                 64u /* requests in progress per connection; BUSY beyond */
#define SRV_OUTPUT_HIGH                  (8u << 20) /* queued output bytes that stop reading a connection */
#define SRV_OUTPUT_LOW                   (1u << 20) /* ...and resume it once drained below this */
#define SRV_STREAM_ROUNDS                1u /* stream chunks being built at once per connection */
#define SRV_BATCH_CACHE_TOTAL            (1ull << 30) /* bytes of decoded rows all batch streams may cache */
#define SRV_MAX_AUTH_FAILURES            3u  /* wrong tokens before the connection is closed */
#define SRV_MAX_AUTH_FAILURES_PER_SECOND 20u /* wrong tokens per second, all peers (see below) */
#define SRV_MAX_PEER_AUTH_FAILURES       10u /* wrong tokens per second from one peer (see below) */
#define SRV_AUTH_HOLD_MS                 1000u       /* ms a held hello waits for its answer */
#define SRV_MAX_HELLO_FRAME              (16u << 10) /* bytes of a frame before a valid hello */
#define SRV_READ_BUFFER                  (64u << 10) /* bytes read from a socket at once */
/* Past SRV_MAX_PEER_AUTH_FAILURES, or past SRV_MAX_AUTH_FAILURES_PER_SECOND
 * for a peer that failed too, a peer's hellos are answered SRV_AUTH_HOLD_MS
 * late. SRV_MAX_HELLO_FRAME applies before a valid hello when a token file is
 * set; frames larger than it are read against max_buffered_bytes. */

/* Client (client/). */
#define DREAM_MAX_INFLATED (64ull << 30) /* bytes a gzip input may inflate to */

#endif
