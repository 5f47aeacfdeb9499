export { PubSub, Subscription, defaultPubSubOptions, type PubSubOptions, type PubSubStats, type PublishOptions, type TopicMessage, type TopicOptions, type Rendezvous } from './pubsub.js'
export { MAX_PUBSUB_DATA, MAX_TOPIC_BYTES, topicId, authorize, encodeAuthorization, decodeAuthorization, verifyAuthorization, type Authorization } from './message.js'
